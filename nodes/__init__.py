"""The stock node library: one module per node kind. Stock names come from each class's ``kind``.

Modules here import only light dependencies at top level (numpy, scipy, pywt); heavy or
hardware ones (torch, pyomyo, serial, pylsl) are imported inside ``setup()`` so that
validating a graph stays fast.
"""
