"""The first opinion: autogenerate's ops turned into findings."""
