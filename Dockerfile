# Charla in one container: a multi-stage build whose runtime image holds only
# the `charla` binary (templates and assets are compiled into it).
# Builder and runtime share Debian 12 (bookworm), so the binary's glibc matches.

FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.73
WORKDIR /app

# The dependency recipe changes only when Cargo.toml or Cargo.lock do, so the
# layer that compiles every dependency stays cached across code changes.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
# The patched actix-http (vendor/README.md) is a dependency, not a workspace
# member, so the recipe does not carry it: the dependency build needs it whole.
COPY vendor vendor
RUN cargo chef cook --release --locked --recipe-path recipe.json --package charla-server
COPY . .
RUN cargo build --release --locked --package charla-server --bin charla \
    && mkdir -p /data

# Distroless: no shell, no package manager, glibc and libgcc only.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /app/target/release/charla /usr/local/bin/charla
# Without Redis, history lives in a SQLite file under /data, owned by the
# runtime user (the image has no shell to create it, so it is copied in).
# Mount a volume there (`docker run -v charla-data:/data`) to keep history
# across containers. There is no VOLUME instruction: Heroku does not support
# one (its dyno filesystem is ephemeral), and with Redis /data is not used.
COPY --from=builder --chown=65532:65532 /data /data
# The distroless "nonroot" user, by number so the platform can verify it.
# Heroku never runs a container with root privileges; there app.json points
# CHARLA_DATABASE at /tmp, writable whatever user runs the container.
USER 65532:65532
# Platforms set PORT (Heroku always does); 8080 is the default for a plain
# `docker run`. EXPOSE documents that default for local runs only: Heroku
# ignores it and routes to $PORT.
ENV PORT=8080 \
    CHARLA_DATABASE=/data/charla.db
EXPOSE 8080
# The image has no shell, so the binary is the ENTRYPOINT (exec form: it is
# PID 1 and gets SIGTERM itself). Heroku requires a CMD and, with an
# ENTRYPOINT set, hands the CMD to it as the argument (without an
# ENTRYPOINT it would run the CMD with /bin/sh -c, which this image lacks).
# `--` ends the options and sets nothing: every setting comes from the
# environment. `docker run charla --help` replaces it as usual.
ENTRYPOINT ["/usr/local/bin/charla"]
CMD ["--"]
