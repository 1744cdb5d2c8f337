"""Infrastructure every other package stands on: typed params, atomic writes, errors, stage
logging, hashing, scratch space, results files, plots, distributed set-up, environment reports."""
