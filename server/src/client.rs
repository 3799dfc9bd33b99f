//! Who is on the other end of a request: the client's address, taken from forwarding headers
//! only when the TCP peer is a trusted proxy (`KEYPORT_TRUSTED_PROXIES`), and its user agent.
//! The one rule for the portal (throttling, audit, sessions), the REST API and forward auth.
use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};
use domain::audit::RequestContext;
use ipnet::IpNet;

use crate::AppState;

/// The client's address: forwarding headers count only when the TCP peer is a trusted proxy.
/// Of `X-Forwarded-For`, the right-most address that is not itself a trusted proxy is the
/// client (RFC 7239 reasoning: anything left of it was written by the client); without that
/// header, `X-Real-IP`; otherwise the peer.
pub fn client_ip(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        let mut hops: Vec<IpAddr> = xff
            .split(',')
            .filter_map(|h| h.trim().parse::<IpAddr>().ok())
            .collect();
        while let Some(hop) = hops.pop() {
            if !is_trusted(&hop) || hops.is_empty() {
                return hop;
            }
        }
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer)
}

/// The client's address as an extractor (see [`client_ip`]). Without a TCP peer (requests made
/// in-process), the unspecified address.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        Ok(ClientIp(client_ip(
            &state.trusted_proxies,
            peer,
            &parts.headers,
        )))
    }
}

/// The TCP peer itself, whatever it forwards (a gateway calling the verification endpoints).
/// Without a TCP peer (requests made in-process), the unspecified address.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub IpAddr);

impl<S: Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip()),
        ))
    }
}

/// Client address (through [`ClientIp`]) and user agent, for throttling and the audit log.
pub struct ClientContext(pub RequestContext);

impl FromRequestParts<AppState> for ClientContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ClientContext(RequestContext {
            ip: Some(ip.to_string()),
            user_agent,
        }))
    }
}
