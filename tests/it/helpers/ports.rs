//! Ports on loopback that nothing listens on, chosen by the kernel.

/// A bound listener: the port stays ours for as long as it lives.
pub fn listener() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port")
}

/// A port that was free a moment ago (its listener is closed again).
pub fn free() -> u16 {
    listener().local_addr().expect("a bound address").port()
}
