"""Project tooling behind the ``emotion`` command: profiles, checks, datasets, PR report."""
