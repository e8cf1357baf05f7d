"""The compliance scanner: ``consent scan URL``.

It drives the system's Chromium through three visits of a site, each in a
fresh profile (no interaction, "Reject all", "Accept all"), records the
cookies, Web Storage and requests to other sites of each, and checks them
against the site's published cookie declaration, or against a list of
well-known trackers when there is none. Playwright is the optional extra
``scan``; it is imported only when a scan runs.
"""

from .declaration import Declaration as Declaration
from .errors import DeclarationError as DeclarationError
from .errors import ScanError as ScanError
from .findings import Finding as Finding
from .findings import Location as Location
from .records import ScanResult as ScanResult
from .records import VisitRecord as VisitRecord
from .runner import ScanOptions as ScanOptions
from .runner import scan as scan
