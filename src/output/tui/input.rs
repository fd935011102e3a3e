//! Keys → dashboard actions. In raw mode Ctrl-C is a key event, not SIGINT, so it is mapped
//! here to the same stop request as `q`.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `q`, `Esc` or Ctrl-C: stop the run gracefully (a second one exits at once).
    Stop,
    /// Tab / Shift-Tab: overview ↔ per-step view.
    ToggleView,
    /// The terminal changed size: redraw now.
    Redraw,
}

pub fn action(event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => key_action(key),
        Event::Resize(..) => Some(Action::Redraw),
        _ => None,
    }
}

fn key_action(key: &KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('c') | KeyCode::Char('C') if ctrl => Some(Action::Stop),
        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => Some(Action::Stop),
        KeyCode::Tab | KeyCode::BackTab => Some(Action::ToggleView),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn q_and_ctrl_c_stop_tab_toggles_plain_c_does_nothing() {
        let none = KeyModifiers::NONE;
        assert_eq!(action(&key(KeyCode::Char('q'), none)), Some(Action::Stop));
        assert_eq!(
            action(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Stop)
        );
        assert_eq!(action(&key(KeyCode::Char('c'), none)), None);
        assert_eq!(action(&key(KeyCode::Tab, none)), Some(Action::ToggleView));
        assert_eq!(
            action(&key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::ToggleView)
        );
        assert_eq!(action(&Event::Resize(80, 24)), Some(Action::Redraw));
    }
}
