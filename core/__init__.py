"""The plumbing every app stands on: database calls from async code (`db`), Redis
clients (`redis`), the clock (`clock`), append-only models (`append_only`) and the
logging setup (`logs`). It imports nothing of ours: the project's configuration
(`nexai/`) sits above every app, this package below them all."""
