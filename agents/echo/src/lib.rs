//! The smallest useful agent, and the template `make new-agent NAME=...`
//! copies: change `describe` and `handle` to give an agent its behaviour.
//! Fields of the type are the agent's memory for the life of its session.

use a2a_agent_sdk::*;

/// Says back what it heard, and how many messages so far.
struct Echo {
    name: String,
    /// Messages so far: a count, not the texts, so the instance's memory
    /// stays the same however many it is sent.
    heard: u64,
}

impl Agent for Echo {
    fn init(config: Config) -> Result<Self, String> {
        Ok(Echo {
            name: config.get_or("name", "Echo").to_string(),
            heard: 0,
        })
    }

    fn describe(&self) -> Info {
        Info::new(
            &self.name,
            "Says back what it heard, and how many messages so far.",
        )
        .skill(
            "echo",
            "Echo",
            "Answers with the text it was sent",
            &["example"],
        )
    }

    fn handle(&mut self, req: Request) -> Result<Reply, String> {
        let text = req.text();
        if text == "fail" {
            // An error fails the task; the client sees this text.
            return Err("asked to fail".into());
        }
        self.heard += 1;
        log::info(&format!("message {} in this session", self.heard));
        Ok(Update::text(&format!(
            "{} heard: {text} (message {})",
            self.name, self.heard
        ))
        .into())
    }
}

export_agent!(Echo);
