"""Stand-ins for the parts of A1111 v1.10.1's `modules` package the extension touches.

Each file names the A1111 file it mirrors. They keep the signatures and the behaviour the extension
relies on, written small; they are not A1111's code.
"""
