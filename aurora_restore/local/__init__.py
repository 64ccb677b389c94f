"""The embedded local runtime: moto's server, the RDS simulator, a real PostgreSQL, workers, Lambda Invoke."""
