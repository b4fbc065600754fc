"""The privacy console: a web app over the store, with sign-in, roles and an append-only audit trail.

- ``db``        the console's database (SQLite or PostgreSQL); its only SQLAlchemy module
- ``accounts``  users, roles, Argon2id password hashes, lockout, API tokens hashed at rest
- ``sessions``  server-side sessions behind HttpOnly SameSite=Strict cookies, CSRF tokens, idle timeout
- ``audit``     the append-only audit trail: a table refusing UPDATE/DELETE, and a Kafka topic
- ``service``   the answers the pages show, breach queries as background jobs
- ``routing``   the one role check, and each router's roles declared beside its routes
- ``pages``, ``api``  the two routers (HTML pages, their JSON twins); ``actions`` what both do
- ``app``       the FastAPI app, built from the routers (their role tables merged once, no global)
- ``server``    building it all from settings, and running it under uvicorn
"""
