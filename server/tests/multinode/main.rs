//! Many nodes on one PostgreSQL: each test starts the real `nudge` binary (or two stores) on a
//! throwaway cluster and checks what only a shared database can break: fan-out across nodes,
//! event ids in commit order, idempotency keys across nodes, a database restart, and sessions
//! and private-room memberships that hold on every node.

#[path = "../common/accounts.rs"]
mod accounts_common;
#[path = "../common/pg.rs"]
mod pg;
#[path = "../common/process.rs"]
mod process_common;
#[allow(dead_code)]
#[path = "../api/sse_client.rs"]
mod sse_client;
#[path = "../common/wait.rs"]
mod wait;

mod node;

mod accounts;
mod batch;
mod commit_order;
mod fanout;
mod idempotency;
mod push;
mod restart;
