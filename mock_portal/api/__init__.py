"""HTTP handlers, named by operationId: thin — parse, call the domain, render."""
