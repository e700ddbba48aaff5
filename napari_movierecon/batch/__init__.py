"""Batch reconstruction: a TOML plan expanded into runs with content keys, run on Dask
(``dask.distributed``; a LocalCluster, an existing scheduler or dask-jobqueue), each run
writing its own result file atomically so a re-run skips finished work.

Modules: ``plan`` (parse + validate), ``runs`` (expansion, content keys), ``task``
(what a worker does), ``cluster`` (which Dask cluster), ``runner`` (submit, collect,
resume), ``table`` (summary rows), ``report`` (summary.csv, report.md, figures),
``estimate`` (a dry run's cost), ``compose`` (a plan from one set-up, for the GUI).
No napari or Qt here.
"""
