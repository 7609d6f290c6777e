"""The ``fusionrec`` command line (the only place that reads flags, seeds globals or sets up logging)."""
