"""What every stage uses: params loading, atomic writes, errors, logging, hashing, scratch space,
plots, environment reports, face detection and the preprocessing contract."""
