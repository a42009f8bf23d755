//! The fan-out agent: it asks every other agent of its session the
//! question it was asked, one after the other, and answers with what each
//! said (or why it could not). `@N question` asks only the agent in slot
//! N; `@http://host/ question` asks an A2A agent outside the session,
//! which the operator must have granted this component. It shows calls
//! between agents (`a2a_agent_sdk::peers`): each call goes through the
//! host like a client's, within what is left of this agent's own call.

use a2a_agent_sdk::*;

struct FanOut;

/// Who a message is for: `@N rest` a slot, `@URL rest` an outside agent.
enum Addressee<'a> {
    Slot(u8, &'a str),
    Outside(&'a str, &'a str),
}

fn addressed(text: &str) -> Option<Addressee<'_>> {
    let rest = text.strip_prefix('@')?;
    let (to, question) = rest.split_once(' ').unwrap_or((rest, ""));
    let question = question.trim();
    if to.starts_with("http://") || to.starts_with("https://") {
        return Some(Addressee::Outside(to, question));
    }
    Some(Addressee::Slot(to.parse().ok()?, question))
}

impl Agent for FanOut {
    fn init(_config: Config) -> Result<Self, String> {
        Ok(FanOut)
    }

    fn describe(&self) -> Info {
        Info::new(
            "Fan-out",
            "Asks the other agents of its session the same question and combines their answers",
        )
        .skill(
            "fan-out",
            "Ask everyone",
            "Sends the question to every other agent of the session and lists their answers",
            &["agents", "aggregation"],
        )
    }

    fn handle(&mut self, req: Request) -> Result<Reply, String> {
        let text = req.text();
        let members = peers::members();
        let name_of = |slot: u8| {
            members
                .iter()
                .find(|p| p.slot == slot)
                .map_or_else(|| format!("slot {slot}"), |p| p.name.clone())
        };
        let asked: Vec<(u8, String)> = match addressed(&text) {
            Some(Addressee::Outside(url, question)) => {
                let said = match http::a2a_ask(url, None, question) {
                    Ok(answer) => format!("{url}: {answer}"),
                    Err(why) => format!("{url}: could not answer ({why})"),
                };
                return Ok(Reply::text(&said));
            }
            Some(Addressee::Slot(slot, question)) => vec![(slot, question.to_string())],
            None => members
                .iter()
                .filter(|p| !p.is_self)
                .map(|p| (p.slot, text.clone()))
                .collect(),
        };
        if asked.is_empty() {
            return Ok(Reply::text("There is no one else in this session to ask."));
        }
        let lines: Vec<String> = asked
            .into_iter()
            .map(|(slot, question)| match peers::ask(slot, &question) {
                Ok(answer) => format!("{}: {answer}", name_of(slot)),
                Err(why) => format!("{}: could not answer ({why})", name_of(slot)),
            })
            .collect();
        Ok(Reply::text(&lines.join("\n")))
    }
}

export_agent!(FanOut);
