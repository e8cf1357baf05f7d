var klaroConfig = {
    version: 1,
    elementID: 'klaro',
    storageMethod: 'cookie',
    cookieName: 'klaro',
    cookieExpiresAfterDays: 365,
    default: false,
    mustConsent: false,
    acceptAll: true,
    hideDeclineAll: false,
    hideLearnMore: false,
    groupByPurpose: true,
    lang: 'en',
    translations: {
        zz: {
            privacyPolicyUrl: '/cookies'
        },
        en: {
            consentNotice: {
                title: 'Your choice about cookies',
                description: 'Hangzhou Digital uses cookies that are needed for the site to work. With your permission, we would also use optional cookies for: {purposes}. Nothing optional runs until you choose, and you can change your choice at any time under “Cookie settings”.',
                learnMore: 'Customize'
            },
            consentModal: {
                title: 'Cookie settings',
                description: 'Choose which optional cookies Hangzhou Digital may use. Cookies that the site needs to work are always on. You can change your choice at any time.'
            },
            session: {
                title: 'Your cookie choice',
                description: 'Remember your cookie choice and protect the form you make it with.'
            },
            analytics: {
                title: 'Page views',
                description: 'Counts page views, so we know which articles are read. Nothing is shared with anyone else.'
            },
            westlake_map: {
                title: 'West Lake map',
                description: 'A map of West Lake from the map provider.'
            },
            purposes: {
                necessary: 'Strictly necessary',
                analytics: 'Analytics',
                media: 'Embedded media'
            },
            ok: 'Accept all',
            decline: 'Reject all'
        }
    },
    services: [
        {
            name: 'session',
            purposes: ['necessary'],
            required: true
        },
        {
            name: 'analytics',
            purposes: ['analytics'],
            cookies: [/^_hz_analytics/]
        },
        {
            name: 'westlake_map',
            purposes: ['media']
        }
    ]
};
