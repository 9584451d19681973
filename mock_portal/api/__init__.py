"""HTTP handlers, named by operationId: thin — parse, call the domain, render. With the wire gateway,
request guard and problem+json rendering. May import the domain packages and `reports`; never `web`."""
