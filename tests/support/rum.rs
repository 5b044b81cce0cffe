//! rumqttc helpers: a client whose event loop runs in a task and forwards every incoming packet to
//! a channel, so a test can `recv` with a timeout.
#![allow(dead_code)]

use rumqttc::v5;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::raw::WAIT;

/// An MQTT 5 rumqttc client and the packets it receives.
pub struct V5 {
    pub client: v5::AsyncClient,
    pub rx: mpsc::UnboundedReceiver<v5::mqttbytes::v5::Packet>,
    pub connack: v5::mqttbytes::v5::ConnAck,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for V5 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl V5 {
    /// Connects with `tweak` applied to the options; waits for the CONNACK.
    pub async fn connect(
        addr: SocketAddr,
        id: &str,
        tweak: impl FnOnce(&mut v5::MqttOptions),
    ) -> V5 {
        let mut options = v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        tweak(&mut options);
        let (client, mut eventloop) = v5::AsyncClient::new(options, 100);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let v5::Event::Incoming(packet) = event
                    && tx.send(packet).is_err()
                {
                    return;
                }
            }
        });
        let connack = timeout(WAIT, async {
            loop {
                match rx.recv().await {
                    Some(v5::mqttbytes::v5::Packet::ConnAck(ack)) => return ack,
                    Some(_) => continue,
                    None => panic!("rumqttc v5 client {id} failed to connect"),
                }
            }
        })
        .await
        .expect("CONNACK timed out");
        V5 {
            client,
            rx,
            connack,
            task,
        }
    }

    /// The next PUBLISH within `wait`.
    pub async fn publish_within(&mut self, wait: Duration) -> Option<v5::mqttbytes::v5::Publish> {
        timeout(wait, async {
            loop {
                match self.rx.recv().await {
                    Some(v5::mqttbytes::v5::Packet::Publish(p)) => return Some(p),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The next PUBLISH; panics after [`WAIT`].
    pub async fn next_publish(&mut self) -> v5::mqttbytes::v5::Publish {
        self.publish_within(WAIT)
            .await
            .expect("no PUBLISH received")
    }

    /// Waits for the SUBACK of the last subscribe and returns its reason codes.
    pub async fn suback(&mut self) -> Vec<v5::mqttbytes::v5::SubscribeReasonCode> {
        timeout(WAIT, async {
            loop {
                match self.rx.recv().await {
                    Some(v5::mqttbytes::v5::Packet::SubAck(ack)) => return ack.return_codes,
                    Some(_) => continue,
                    None => panic!("connection closed before SUBACK"),
                }
            }
        })
        .await
        .expect("SUBACK timed out")
    }
}

/// An MQTT 3.1.1 rumqttc client and the packets it receives.
pub struct V311 {
    pub client: rumqttc::AsyncClient,
    pub rx: mpsc::UnboundedReceiver<rumqttc::Packet>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for V311 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl V311 {
    pub async fn connect(addr: SocketAddr, id: &str) -> V311 {
        let mut options = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                if let rumqttc::Event::Incoming(packet) = event
                    && tx.send(packet).is_err()
                {
                    return;
                }
            }
        });
        timeout(WAIT, async {
            loop {
                match rx.recv().await {
                    Some(rumqttc::Packet::ConnAck(ack)) => {
                        assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
                        return;
                    }
                    Some(_) => continue,
                    None => panic!("rumqttc 3.1.1 client {id} failed to connect"),
                }
            }
        })
        .await
        .expect("CONNACK timed out");
        V311 { client, rx, task }
    }

    /// Waits for the next SUBACK.
    pub async fn suback(&mut self) {
        timeout(WAIT, async {
            loop {
                match self.rx.recv().await {
                    Some(rumqttc::Packet::SubAck(_)) => return,
                    Some(_) => continue,
                    None => panic!("connection closed before SUBACK"),
                }
            }
        })
        .await
        .expect("SUBACK timed out")
    }

    /// The next PUBLISH within `wait`.
    pub async fn publish_within(&mut self, wait: Duration) -> Option<rumqttc::Publish> {
        timeout(wait, async {
            loop {
                match self.rx.recv().await {
                    Some(rumqttc::Packet::Publish(p)) => return Some(p),
                    Some(_) => continue,
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}
