//! The wire protocol (filled in with the separate gofer process).
