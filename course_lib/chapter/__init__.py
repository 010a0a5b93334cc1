"""The chapter's own designs, reproduced faithfully *with their flaws*, for contrast.

Each module mirrors one section of the chapter under the chapter's class names; only
what stops the code from running at all is fixed (and marked).  The working versions
live in the other packages of ``course_lib``.
"""
