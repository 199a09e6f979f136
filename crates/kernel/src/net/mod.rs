//! Sockets (filled in with networking).
