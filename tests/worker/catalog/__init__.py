"""The second opinion: the models database and the catalog comparison."""
