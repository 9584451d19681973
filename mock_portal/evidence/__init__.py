"""Field evidence: what real sends say about the sandbox's graded behaviours.

A hospital system keeps what it sent to the real portal and the bare code it got back. Re-judging
such a send as the sandbox would (`judge.py`, in `portal` and `strict` mode, at the instant it was
sent) shows where the two disagree; the record of a judged send (`record.py`) keeps only what carries
no personal data (codes, field paths, document type, day, hashes), so vendors can share it: the evidence
file (`field.py`, whose schema leaves no room for anything else) carries such records, and `moves.py` says
which grades they would move (`mock-portal fidelity --evidence`, `GET /sandbox/fidelity`).
"""
