//! The cluster's trust, shared by the API server, the clients that join a
//! cluster and the node agent: the client-certificate verifier of the HTTPS
//! servers that authenticate clients by certificate (`tls`) and the join
//! token that lets an agent trust the cluster CA it fetches (`jointoken`).
//! The CA and certificate issuing stay in the API server (`pki`), the only
//! crate that issues certificates.

pub mod jointoken;
pub mod tls;
