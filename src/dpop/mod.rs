//! DPoP (RFC 9449): proof verification ([`proof`]), the RFC 3986 `htu` comparison
//! ([`htu`]), replay protection ([`replay`]) and server nonces ([`nonce`]), put together
//! for one request by [`check`].

pub mod check;
pub mod htu;
pub mod nonce;
pub mod proof;
pub mod replay;
