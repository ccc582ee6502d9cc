"""Privacy events, composition over rounds, and audits."""
