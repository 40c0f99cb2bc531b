//! A write on one node reaches the streams and the reads of another.

use crate::node::Node;
use crate::pg::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_on_one_node_reaches_a_subscriber_and_a_read_on_another() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let ready = b.client.get(b.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "the store answers");
    let mut stream = b.subscribe("topic=rooms/general").await;

    let posted = a.post("general", "hello from a", None).await;
    assert_eq!(posted.status(), 201);
    let posted: serde_json::Value = posted.json().await.unwrap();
    let event_id = posted["event_id"].as_i64().unwrap();

    let event = stream.next_event().await.expect("the stream on b is open");
    assert_eq!(event.event, "changed");
    assert_eq!(event.id(), event_id);
    assert_eq!(event.json()["url"], "/api/rooms/general/recent");

    let recent = b.get_json("/api/rooms/general/recent").await;
    assert_eq!(recent["last_event_id"], event_id);
    assert_eq!(recent["messages"][0]["text"], "hello from a");
    assert_eq!(recent["messages"][0]["id"], posted["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumed_on_another_node_replays_what_it_missed() {
    let url = Cluster::shared().fresh_database();
    let (a, b) = (Node::start(&url), Node::start(&url));
    let first: serde_json::Value = a.post("lobby", "one", None).await.json().await.unwrap();
    let second: serde_json::Value = a.post("lobby", "two", None).await.json().await.unwrap();
    let response = reqwest::Client::new()
        .get(b.url("/api/events?topic=rooms/lobby"))
        .header("Last-Event-ID", first["event_id"].to_string())
        .send()
        .await
        .unwrap();
    let mut stream = crate::sse_client::SseClient::new(response);
    let replayed = stream.next_event().await.unwrap();
    assert_eq!(replayed.id(), second["event_id"].as_i64().unwrap());
}
