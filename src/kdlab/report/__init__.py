"""Rendering the pipeline's numbers: booktabs tables, figures and LaTeX macros.

- :mod:`kdlab.report.latex`    tables (pandas Styler -> booktabs) and ``numbers.tex`` macros
- :mod:`kdlab.report.figures`  matplotlib/seaborn figures saved as byte-stable PDF + PNG

Both modules take plain data (DataFrames, dicts, arrays) and never read the
pipeline's files themselves; the `report` stage (:mod:`kdlab.stages.report`)
does the reading. Later analyses add their tables and figures with the same
functions.
"""
