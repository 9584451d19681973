"""The simulated IPSS (civil registration) side: what HIAP shares with it and what it does with it.

`sharing` is the outbox worker that shares each accepted document exactly once; `registration`
answers the birth and death registrations that use the shared data. Storage lives in `store.ipss`.
May import `results`, `control.clock` and `store`; never the portal core, HTTP or Flask.
"""
