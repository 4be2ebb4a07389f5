//! DPoP (RFC 9449): proof verification and replay protection.

pub mod htu;
pub mod proof;
pub mod replay;
