"""The Decree 63/2024 Art. 25.1 deadline: 4 working hours from issuing the paper to the portal's acceptance.

`working_time` is the calendar arithmetic (working days, hours, holidays; `calendars/` ships examples),
`accounting` decides each accepted document's issue instant and verdict. May import `results`,
`documents`, `control.clock` and `store`; never the portal core, HTTP or Flask.
"""
