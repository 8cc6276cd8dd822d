"""Fitting the routing model and judging it across authors and notes trees. Not installed with
the package: `python -m training …` from a clone, with the labelled files in `training/data/`."""
