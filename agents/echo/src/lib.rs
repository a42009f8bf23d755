//! The smallest useful agent, and the template `make new-agent NAME=...`
//! copies: change `describe` and `handle` to give an agent its behaviour.
//! Fields of the type are the agent's memory for the life of its session.

use a2a_agent_sdk::*;

/// Says back what it heard, and how many messages so far.
struct Echo {
    name: String,
    heard: Vec<String>,
}

impl Agent for Echo {
    fn init(config: Config) -> Result<Self, String> {
        Ok(Echo {
            name: config.get_or("name", "Echo").to_string(),
            heard: Vec::new(),
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
        self.heard.push(text.clone());
        log::info(&format!("message {} in this session", self.heard.len()));
        Ok(Update::text(&format!(
            "{} heard: {text} (message {})",
            self.name,
            self.heard.len()
        ))
        .into())
    }
}

export_agent!(Echo);
