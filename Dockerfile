# tinyprom in a FROM scratch image: one statically linked, stripped binary and nothing
# else (about 1.5 MB in all).
#
#   docker build -t tinyprom .
#   docker run --rm -p 8080:8000 tinyprom          # then: curl localhost:8080/up
#   docker compose up                              # with Prometheus, see docker-compose.yml
#
# The build stage runs `make static`: glibc linked in with +crt-static (no musl target
# needed), size-first `static` profile. The binary needs nothing from the image: no
# libc, no /etc, no shell; it reads /proc for process_* metrics, which containers have.
#
# No registry at hand? `make static` on the host and build Dockerfile.runtime instead:
# the same final stage, with the binary copied from the build context. `make
# container-test` checks that the two final stages stay the same.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock Makefile ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN make static

FROM scratch
COPY --from=build /src/dist/tinyprom /tinyprom
# nobody:nogroup, as numbers: the image has no /etc/passwd.
USER 65534:65534
EXPOSE 8000
# The binary checks itself: a scratch image has no curl and no shell. Docker runs the
# first check one interval after the start, so the interval is the time to healthy.
HEALTHCHECK --interval=5s --timeout=3s --start-period=2s --retries=3 \
    CMD ["/tinyprom", "--health-check"]
ENTRYPOINT ["/tinyprom"]
CMD ["--web.listen-address=0.0.0.0:8000"]
