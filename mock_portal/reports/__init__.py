"""The six-monthly implementation report of Official Dispatch 4410/BYT-KCB (Appendix 02).

`semiannual` builds it from the store, `page` and `charts` render it as HTML with inline SVG, and
`formats` picks JSON, CSV or HTML. Used by the API, the dashboard and `mock-portal report`; it
imports the portal core and never the dashboard, HTTP or Flask.
"""
