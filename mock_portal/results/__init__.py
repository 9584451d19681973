"""Results as data: findings, evidence grades and strictness, the real portal's result codes (`codes`),
and the control plane's errors.

The vocabulary every check speaks (documents, signature, auth, IPSS) and every layer renders. It sits
at the bottom of the house: nothing here imports another project module.
"""
