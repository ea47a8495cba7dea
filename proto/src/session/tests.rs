use super::*;
use crate::image::CpuTime;
use crate::migrate::ByteBuf;

const STATES: [State; 9] = [
    State::Opening,
    State::Sending,
    State::Starting,
    State::Serving,
    State::InCall,
    State::Returning,
    State::Arriving,
    State::Leaving,
    State::Ended,
];

/// One message of every kind home sends.
fn home_msgs() -> Vec<HomeMsg> {
    vec![
        HomeMsg::Begin {
            home: "node1".into(),
            home_pid: 42,
            image_len: 0,
            locked: false,
        },
        HomeMsg::ImageChunk(ByteBuf::from(vec![1, 2, 3])),
        HomeMsg::ImageEnd,
        HomeMsg::SyscallResult {
            tid: 1,
            ret: 0,
            outbufs: Vec::new(),
        },
        HomeMsg::Signal { signal: 10 },
        HomeMsg::ThreadSignal {
            tid: 43,
            signal: 12,
        },
        HomeMsg::ComeHome,
        HomeMsg::Arrived,
        HomeMsg::Stay { error: "no".into() },
        HomeMsg::SyscallPart {
            tid: 1,
            outbufs: Vec::new(),
        },
    ]
}

/// One message of every kind the remote sends.
fn remote_msgs() -> Vec<RemoteMsg> {
    vec![
        RemoteMsg::Started { guest_pid: 7 },
        RemoteMsg::Failed { error: "no".into() },
        RemoteMsg::Syscall {
            tid: 1,
            nr: 0,
            args: [0; 6],
            inbufs: Vec::new(),
        },
        RemoteMsg::Exited {
            code: 0,
            cpu: CpuTime::default(),
        },
        RemoteMsg::Killed {
            signal: 9,
            cpu: CpuTime::default(),
        },
        RemoteMsg::Stopped { signal: 19 },
        RemoteMsg::Returning {
            reason: "asked".into(),
            next: None,
        },
        RemoteMsg::ImageChunk(ByteBuf::from(vec![1])),
        RemoteMsg::ImageEnd,
        RemoteMsg::CannotReturn { error: "no".into() },
        RemoteMsg::Gone {
            signals: Vec::new(),
        },
        RemoteMsg::FilesMissing { error: "no".into() },
        RemoteMsg::Cancel { tid: 1 },
        RemoteMsg::SyscallPart {
            tid: 1,
            inbufs: Vec::new(),
        },
    ]
}

/// Every legal transition, written out: (state, message, next state).
const HOME_LEGAL: &[(State, &str, State)] = &[
    (State::Opening, "Begin", State::Sending),
    (State::Sending, "ImageChunk", State::Sending),
    (State::Sending, "ImageEnd", State::Starting),
    (State::InCall, "SyscallResult", State::Serving),
    (State::InCall, "SyscallPart", State::InCall),
    (State::Serving, "Signal", State::Serving),
    (State::Serving, "ThreadSignal", State::Serving),
    (State::Serving, "ComeHome", State::Serving),
    (State::InCall, "Signal", State::InCall),
    (State::InCall, "ThreadSignal", State::InCall),
    (State::InCall, "ComeHome", State::InCall),
    (State::Returning, "Signal", State::Returning),
    (State::Returning, "ThreadSignal", State::Returning),
    (State::Returning, "ComeHome", State::Returning),
    (State::Arriving, "Signal", State::Arriving),
    (State::Arriving, "ThreadSignal", State::Arriving),
    (State::Arriving, "ComeHome", State::Arriving),
    (State::Arriving, "Arrived", State::Leaving),
    (State::Arriving, "Stay", State::Serving),
];

const REMOTE_LEGAL: &[(State, &str, State)] = &[
    (State::Starting, "Started", State::Serving),
    (State::Starting, "Failed", State::Ended),
    (State::Starting, "FilesMissing", State::Ended),
    (State::Serving, "Syscall", State::InCall),
    (State::InCall, "Syscall", State::InCall),
    (State::Serving, "Cancel", State::Serving),
    (State::InCall, "Cancel", State::InCall),
    (State::Serving, "SyscallPart", State::Serving),
    (State::InCall, "SyscallPart", State::InCall),
    (State::Serving, "Stopped", State::Serving),
    (State::Serving, "Exited", State::Ended),
    (State::Serving, "Killed", State::Ended),
    (State::Serving, "Returning", State::Returning),
    (State::Returning, "ImageChunk", State::Returning),
    (State::Returning, "ImageEnd", State::Arriving),
    (State::Returning, "CannotReturn", State::Arriving),
    (State::Leaving, "Gone", State::Ended),
];

#[test]
fn every_message_in_every_state_is_legal_exactly_as_the_table_says() {
    for s in STATES {
        for m in home_msgs() {
            let want = HOME_LEGAL
                .iter()
                .find(|(from, name, _)| *from == s && *name == home_name(&m))
                .map(|t| t.2);
            match (s.home_may_send(&m), want) {
                (Ok(next), Some(want)) => assert_eq!(next, want, "{s:?} + {m:?}"),
                (Err(e), None) => {
                    assert_eq!((e.state, e.from, e.message), (s, "home", home_name(&m)));
                    assert!(e.to_string().contains(home_name(&m)), "{e}");
                }
                (got, want) => panic!("{s:?} + home's {m:?}: {got:?}, the table: {want:?}"),
            }
        }
        for m in remote_msgs() {
            let want = REMOTE_LEGAL
                .iter()
                .find(|(from, name, _)| *from == s && *name == remote_name(&m))
                .map(|t| t.2);
            match (s.remote_may_send(&m), want) {
                (Ok(next), Some(want)) => assert_eq!(next, want, "{s:?} + {m:?}"),
                (Err(e), None) => {
                    assert_eq!(
                        (e.state, e.from, e.message),
                        (s, "the remote", remote_name(&m))
                    );
                }
                (got, want) => panic!("{s:?} + the remote's {m:?}: {got:?}, the table: {want:?}"),
            }
        }
    }
    // Nothing is legal once the session is over.
    assert!(
        home_msgs()
            .iter()
            .all(|m| State::Ended.home_may_send(m).is_err())
    );
    assert!(
        remote_msgs()
            .iter()
            .all(|m| State::Ended.remote_may_send(m).is_err())
    );
}

/// Messages cross: what one side sent before it saw the other's message
/// must be legal when the other side reads it, in the state the other
/// side's own message led to (unless that ended the session: nobody reads
/// then).
#[test]
fn crossing_messages_are_legal_for_their_reader() {
    for s in STATES {
        for h in home_msgs() {
            let Ok(after_h) = s.home_may_send(&h) else {
                continue;
            };
            for r in remote_msgs() {
                let Ok(after_r) = s.remote_may_send(&r) else {
                    continue;
                };
                if after_r != State::Ended {
                    assert!(
                        after_r.home_may_send(&h).is_ok(),
                        "in {s:?}: the remote sent {r:?} and then reads home's {h:?} in {after_r:?}"
                    );
                }
                assert!(
                    after_h.remote_may_send(&r).is_ok(),
                    "in {s:?}: home sent {h:?} and then reads the remote's {r:?} in {after_h:?}"
                );
            }
        }
    }
}

/// Whole sessions, message by message, as the two sides exchange them.
#[test]
fn whole_sessions_walk_the_table_to_their_end() {
    enum M {
        H(HomeMsg),
        R(RemoteMsg),
    }
    let call = || RemoteMsg::Syscall {
        tid: 1,
        nr: 1,
        args: [0; 6],
        inbufs: Vec::new(),
    };
    let result = || HomeMsg::SyscallResult {
        tid: 1,
        ret: 5,
        outbufs: Vec::new(),
    };
    let begin = || HomeMsg::Begin {
        home: "node1".into(),
        home_pid: 1,
        image_len: 0,
        locked: true,
    };
    let sessions: Vec<(&str, Vec<M>)> = vec![
        (
            "runs, calls home, exits",
            vec![
                M::H(begin()),
                M::H(HomeMsg::ImageChunk(ByteBuf::from(vec![0]))),
                M::H(HomeMsg::ImageEnd),
                M::R(RemoteMsg::Started { guest_pid: 3 }),
                M::R(call()),
                M::H(HomeMsg::Signal { signal: 2 }),
                M::H(result()),
                M::R(RemoteMsg::Stopped { signal: 20 }),
                M::H(HomeMsg::Signal { signal: 18 }),
                M::R(RemoteMsg::Exited {
                    code: 0,
                    cpu: CpuTime::default(),
                }),
            ],
        ),
        (
            "asked home: home cannot take it, then can",
            vec![
                M::H(begin()),
                M::H(HomeMsg::ImageEnd),
                M::R(RemoteMsg::Started { guest_pid: 3 }),
                M::H(HomeMsg::ComeHome),
                M::R(RemoteMsg::Returning {
                    reason: "asked by home".into(),
                    next: None,
                }),
                M::R(RemoteMsg::ImageChunk(ByteBuf::from(vec![0]))),
                M::R(RemoteMsg::ImageEnd),
                M::H(HomeMsg::Stay {
                    error: "no room".into(),
                }),
                M::R(RemoteMsg::Returning {
                    reason: "asked by home".into(),
                    next: None,
                }),
                M::R(RemoteMsg::CannotReturn {
                    error: "gone".into(),
                }),
                M::H(HomeMsg::Stay {
                    error: "no image".into(),
                }),
                M::R(RemoteMsg::Returning {
                    reason: "sent home by its host".into(),
                    next: Some("node3".into()),
                }),
                M::R(RemoteMsg::ImageEnd),
                M::H(HomeMsg::Arrived),
                M::R(RemoteMsg::Gone { signals: vec![10] }),
            ],
        ),
        (
            "refused",
            vec![
                M::H(begin()),
                M::H(HomeMsg::ImageEnd),
                M::R(RemoteMsg::FilesMissing {
                    error: "no /usr/bin/x".into(),
                }),
            ],
        ),
    ];
    for (what, msgs) in sessions {
        let mut s = State::Opening;
        for m in &msgs {
            s = match m {
                M::H(h) => s.home_may_send(h),
                M::R(r) => s.remote_may_send(r),
            }
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        assert_eq!(s, State::Ended, "{what}");
    }
}

#[test]
fn a_thread_has_one_call_at_a_time_and_a_result_answers_one() {
    let mut calls = Calls::default();
    assert_eq!(calls.state(), State::Serving);
    calls.sent(5).unwrap();
    calls.sent(6).unwrap();
    assert!(
        calls.sent(5).is_err(),
        "a second call of a thread in a call"
    );
    assert_eq!(calls.state(), State::InCall);
    calls.answered(6).unwrap();
    assert!(calls.answered(6).is_err(), "answered twice");
    assert!(calls.answered(7).is_err(), "never called");
    assert_eq!(calls.tids().collect::<Vec<_>>(), [5]);
    calls.answered(5).unwrap();
    assert!(calls.is_empty());
    assert_eq!(calls.state(), State::Serving);
}
