"""One module per DVC stage; each has ``main(argv)`` and reads its params once.

Run as ``python -m kdlab.stages.<stage>`` from the repository root (dvc.yaml
does this). The modules only wire files to the pure functions in ``kdlab``.
"""
