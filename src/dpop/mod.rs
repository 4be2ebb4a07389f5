//! DPoP (RFC 9449): proof verification ([`proof`]), the RFC 3986 `htu` comparison
//! ([`htu`]) and replay protection ([`replay`]).

pub mod htu;
pub mod proof;
pub mod replay;
