//! The Redis token store's integration tests, as one test binary, against a real
//! `redis-server` on a loopback port.

mod fleet;
mod redis;
mod redis_server;
