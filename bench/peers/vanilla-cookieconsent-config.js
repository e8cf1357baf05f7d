import '/node_modules/vanilla-cookieconsent/dist/cookieconsent.umd.js';

CookieConsent.run({
    categories: {
        necessary: {
            enabled: true,
            readOnly: true
        },
        analytics: {
            autoClear: {
                cookies: [{ name: /^_hz_analytics/ }]
            }
        },
        media: {
            services: {
                westlake_map: { label: 'West Lake map' }
            }
        }
    },

    language: {
        default: 'en',
        translations: {
            en: {
                consentModal: {
                    title: 'Your choice about cookies',
                    description: 'Hangzhou Digital uses cookies that are needed for the site to work. With your permission, we would also use optional cookies for: Analytics, Embedded media. Nothing optional runs until you choose, and you can change your choice at any time under “Cookie settings”.',
                    acceptAllBtn: 'Accept all',
                    acceptNecessaryBtn: 'Reject all',
                    showPreferencesBtn: 'Customize',
                    footer: '<a href="/cookies">Which cookies we use</a>'
                },
                preferencesModal: {
                    title: 'Cookie settings',
                    acceptAllBtn: 'Accept all',
                    acceptNecessaryBtn: 'Reject all',
                    savePreferencesBtn: 'Save choices',
                    closeIconLabel: 'Close',
                    sections: [
                        {
                            description: 'Choose which optional cookies Hangzhou Digital may use. Cookies that the site needs to work are always on. You can change your choice at any time.'
                        },
                        {
                            title: 'Strictly necessary',
                            description: 'Remember your cookie choice and protect the form you make it with.',
                            linkedCategory: 'necessary'
                        },
                        {
                            title: 'Analytics',
                            description: 'Counts page views, so we know which articles are read. Nothing is shared with anyone else.',
                            linkedCategory: 'analytics',
                            cookieTable: {
                                headers: {
                                    name: 'Cookie',
                                    domain: 'Provider',
                                    desc: 'Purpose',
                                    exp: 'Duration'
                                },
                                body: [
                                    {
                                        name: '_hz_analytics',
                                        domain: 'Hangzhou Digital',
                                        desc: 'Tells repeat visits apart when counting page views.',
                                        exp: '13 months'
                                    }
                                ]
                            }
                        },
                        {
                            title: 'Embedded media',
                            description: 'Shows content from other sites, such as the West Lake map.',
                            linkedCategory: 'media'
                        }
                    ]
                }
            }
        }
    }
});
