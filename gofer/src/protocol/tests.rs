use super::*;

fn sample_stat() -> Stat {
    Stat {
        st_dev: 0x803,
        st_ino: 1234567,
        st_nlink: 2,
        st_mode: 0o100644,
        st_uid: 1000,
        st_gid: 1001,
        st_rdev: 7,
        st_size: 4096,
        st_blksize: 4096,
        st_blocks: 8,
        st_atime: 1,
        st_atime_nsec: 2,
        st_mtime: 3,
        st_mtime_nsec: 4,
        st_ctime: -5,
        st_ctime_nsec: 999_999_999,
        ..Stat::default()
    }
}

fn sample_requests() -> Vec<Request> {
    vec![
        Request::Attach,
        Request::Walk {
            dir: 1,
            name: b"etc".to_vec(),
        },
        Request::Stat { fid: 2 },
        Request::Open { fid: 3, flags: 0o2 },
        Request::Readlink { fid: 4 },
        Request::Getdents {
            dir: 5,
            offset: u64::MAX,
            max_bytes: 4096,
        },
        Request::Clunk { fid: 6 },
        Request::Statfs { fid: 7 },
        Request::Create {
            dir: 1,
            name: b"new".to_vec(),
            flags: 0o2,
            mode: 0o644,
            uid: 1000,
            gid: 1001,
        },
        Request::Mkdir {
            dir: 1,
            name: b"d".to_vec(),
            mode: 0o755,
            uid: 0,
            gid: 0,
        },
        Request::Mknod {
            dir: 1,
            name: b"p".to_vec(),
            mode: 0o10644,
            rdev: 0,
            uid: 0,
            gid: 0,
        },
        Request::Symlink {
            dir: 1,
            name: b"l".to_vec(),
            target: b"/etc/passwd".to_vec(),
            uid: 0,
            gid: 0,
        },
        Request::Link {
            target: 2,
            dir: 1,
            name: b"h".to_vec(),
        },
        Request::Unlink {
            dir: 1,
            name: b"d".to_vec(),
            flags: AT_REMOVEDIR,
        },
        Request::Rename {
            old_dir: 1,
            old_name: b"a".to_vec(),
            new_dir: 2,
            new_name: b"b".to_vec(),
            flags: RENAME_EXCHANGE,
        },
        Request::Setattr {
            fid: 3,
            attr: SetAttrMsg {
                valid: setattr_valid::MODE | setattr_valid::SIZE | setattr_valid::MTIME,
                mode: 0o4755,
                size: 10,
                mtime_sec: -1,
                mtime_nsec: 5,
                ..SetAttrMsg::default()
            },
        },
        Request::Getxattr {
            fid: 3,
            name: b"user.a".to_vec(),
        },
        Request::Setxattr {
            fid: 3,
            name: b"user.a".to_vec(),
            value: vec![7; MAX_XATTR_VALUE],
            flags: XATTR_CREATE,
        },
        Request::Listxattr { fid: 3 },
        Request::Removexattr {
            fid: 3,
            name: b"user.a".to_vec(),
        },
    ]
}

fn sample_responses() -> Vec<Response> {
    let statfs = Statfs {
        f_type: 0xef53,
        f_bsize: 4096,
        f_blocks: 10,
        f_fsid: [1, -2],
        f_namelen: 255,
        ..Statfs::default()
    };
    vec![
        Response::Error(Errno::ENOENT),
        Response::Attach {
            fid: 1,
            attr: sample_stat(),
        },
        Response::Walk {
            fid: 2,
            attr: sample_stat(),
        },
        Response::Stat {
            attr: sample_stat(),
        },
        Response::Open,
        Response::Readlink {
            target: b"/etc/passwd".to_vec(),
        },
        Response::Getdents {
            entries: vec![
                DirEntry {
                    ino: 1,
                    next_offset: 10,
                    d_type: 4,
                    name: b".".to_vec(),
                },
                DirEntry {
                    ino: 2,
                    next_offset: u64::MAX,
                    d_type: 8,
                    name: vec![b'x'; 255],
                },
            ],
        },
        Response::Getdents { entries: vec![] },
        Response::Clunk,
        Response::Statfs { statfs },
        Response::New {
            op: Op::Create,
            fid: 9,
            attr: sample_stat(),
        },
        Response::New {
            op: Op::Symlink,
            fid: 10,
            attr: sample_stat(),
        },
        Response::Done(Op::Rename),
        Response::Done(Op::Setattr),
        Response::Getxattr {
            value: vec![1; MAX_XATTR_VALUE],
        },
        Response::Getxattr { value: vec![] },
        Response::Listxattr {
            names: b"user.a\0user.b\0".to_vec(),
        },
    ]
}

#[test]
fn every_request_round_trips() {
    for req in sample_requests() {
        let msg = req.encode().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        assert_eq!(code, req.op().code());
        assert_eq!(Request::decode(code, body).unwrap(), req);
    }
}

#[test]
fn every_response_round_trips() {
    for resp in sample_responses() {
        let msg = resp.encode().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        assert_eq!(Response::decode(code, body).unwrap(), resp);
    }
}

#[test]
fn stat_and_statfs_encode_to_their_declared_sizes() {
    let msg = Response::Stat {
        attr: sample_stat(),
    }
    .encode()
    .unwrap();
    assert_eq!(msg.len(), HEADER_LEN + STAT_LEN);
    let msg = Response::Statfs {
        statfs: Statfs::default(),
    }
    .encode()
    .unwrap();
    assert_eq!(msg.len(), HEADER_LEN + STATFS_LEN);
}

#[test]
fn every_truncation_of_every_message_is_an_error_not_a_panic() {
    for req in sample_requests() {
        let msg = req.encode().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        for cut in 0..body.len() {
            assert!(
                Request::decode(code, &body[..cut]).is_err(),
                "{req:?} cut at {cut}"
            );
        }
    }
    for resp in sample_responses() {
        let msg = resp.encode().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        for cut in 0..body.len() {
            assert!(
                Response::decode(code, &body[..cut]).is_err(),
                "{resp:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut msg = Request::Stat { fid: 1 }.encode().unwrap();
    msg.push(0);
    msg[4..8].copy_from_slice(&9u32.to_le_bytes());
    let (code, body) = parse_frame(&msg).unwrap();
    assert_eq!(
        Request::decode(code, body),
        Err(ProtocolError::TrailingBytes(1))
    );
}

#[test]
fn header_length_must_match_the_datagram() {
    let mut msg = Request::Stat { fid: 1 }.encode().unwrap();
    msg[4..8].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        parse_frame(&msg),
        Err(ProtocolError::LengthMismatch { .. })
    ));
    assert!(matches!(
        parse_frame(&msg[..5]),
        Err(ProtocolError::ShortHeader(5))
    ));
    assert!(matches!(
        parse_frame(&vec![0; MAX_MESSAGE + 1]),
        Err(ProtocolError::Oversized)
    ));
}

#[test]
fn unknown_ops_decode_to_enosys_class_errors() {
    for code in [0, 21, 100, u32::MAX, REPLY_BIT | 1] {
        let err = Request::decode(code, &[]).unwrap_err();
        assert_eq!(err, ProtocolError::UnknownOp(code));
        assert_eq!(err.errno(), Errno::ENOSYS);
    }
    assert!(Response::decode(1, &[]).is_err());
    assert!(Response::decode(REPLY_BIT | 99, &[]).is_err());
}

#[test]
fn over_long_names_are_refused_both_ways() {
    let req = Request::Walk {
        dir: 1,
        name: vec![b'a'; 256],
    };
    assert!(matches!(req.encode(), Err(ProtocolError::TooLong { .. })));
    let mut e = Encoder::new(Op::Walk.code());
    e.u64(1).u16(256);
    let mut msg = e.finish().unwrap();
    msg.extend(vec![b'a'; 256]);
    let len = (msg.len() - HEADER_LEN) as u32;
    msg[4..8].copy_from_slice(&len.to_le_bytes());
    let (code, body) = parse_frame(&msg).unwrap();
    assert!(matches!(
        Request::decode(code, body),
        Err(ProtocolError::TooLong { .. })
    ));
}

#[test]
fn getdents_count_larger_than_the_body_is_rejected_before_allocating() {
    let mut e = Encoder::new(Op::Getdents.reply_code());
    e.u32(u32::MAX);
    let msg = e.finish().unwrap();
    let (code, body) = parse_frame(&msg).unwrap();
    assert_eq!(Response::decode(code, body), Err(ProtocolError::Truncated));
}

#[test]
fn error_responses_need_a_positive_errno() {
    for bad in [0, -1, 4096, i32::MIN] {
        let mut e = Encoder::new(R_ERROR);
        e.i32(bad);
        let msg = e.finish().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        assert_eq!(
            Response::decode(code, body),
            Err(ProtocolError::BadErrno(bad))
        );
    }
}

#[test]
fn entry_names_with_slash_or_nul_are_rejected_by_the_client_decoder() {
    for name in [&b"a/b"[..], b"a\0", b""] {
        let mut e = Encoder::new(Op::Getdents.reply_code());
        e.u32(1).u64(1).u64(2).u8(8);
        e.bytes16("name", name, MAX_NAME).unwrap();
        let msg = e.finish().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        assert!(Response::decode(code, body).is_err(), "{name:?}");
    }
}

#[test]
fn validate_name_accepts_only_single_components() {
    assert_eq!(validate_name(b"passwd"), Ok(()));
    assert_eq!(validate_name(b"..."), Ok(()));
    for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
        assert_eq!(validate_name(bad), Err(Errno::EINVAL), "{bad:?}");
    }
    assert_eq!(validate_name(&[b'a'; 256]), Err(Errno::ENAMETOOLONG));
    assert_eq!(validate_name(&[b'a'; 255]), Ok(()));
}

#[test]
fn dirent64_reclen_matches_the_kernel_layout() {
    assert_eq!(dirent64_reclen(1), 24);
    assert_eq!(dirent64_reclen(4), 24);
    assert_eq!(dirent64_reclen(5), 32);
    assert_eq!(dirent64_reclen(255), 280);
}

#[test]
fn mutation_flags_and_fields_are_validated_when_decoded() {
    let bad = [
        Request::Unlink {
            dir: 1,
            name: b"a".to_vec(),
            flags: 1,
        },
        Request::Rename {
            old_dir: 1,
            old_name: b"a".to_vec(),
            new_dir: 1,
            new_name: b"b".to_vec(),
            flags: RENAME_EXCHANGE | RENAME_NOREPLACE,
        },
        Request::Rename {
            old_dir: 1,
            old_name: b"a".to_vec(),
            new_dir: 1,
            new_name: b"b".to_vec(),
            flags: 4,
        },
        Request::Setxattr {
            fid: 1,
            name: b"user.a".to_vec(),
            value: vec![],
            flags: 4,
        },
        Request::Setattr {
            fid: 1,
            attr: SetAttrMsg {
                valid: 1 << 8,
                ..SetAttrMsg::default()
            },
        },
        Request::Setattr {
            fid: 1,
            attr: SetAttrMsg {
                valid: setattr_valid::MODE,
                mode: 0o170000,
                ..SetAttrMsg::default()
            },
        },
        Request::Setattr {
            fid: 1,
            attr: SetAttrMsg {
                valid: setattr_valid::ATIME | setattr_valid::ATIME_NOW,
                ..SetAttrMsg::default()
            },
        },
        Request::Setattr {
            fid: 1,
            attr: SetAttrMsg {
                valid: setattr_valid::MTIME,
                mtime_nsec: 1_000_000_000,
                ..SetAttrMsg::default()
            },
        },
        Request::Setattr {
            fid: 1,
            attr: SetAttrMsg {
                valid: setattr_valid::SIZE,
                size: u64::MAX,
                ..SetAttrMsg::default()
            },
        },
    ];
    for req in bad {
        let msg = req.encode().unwrap();
        let (code, body) = parse_frame(&msg).unwrap();
        let err = Request::decode(code, body).unwrap_err();
        assert_eq!(err.errno(), Errno::EINVAL, "{req:?}");
    }
}

#[test]
fn oversized_xattr_values_are_refused_both_ways() {
    let req = Request::Setxattr {
        fid: 1,
        name: b"user.a".to_vec(),
        value: vec![0; MAX_XATTR_VALUE + 1],
        flags: 0,
    };
    assert!(matches!(req.encode(), Err(ProtocolError::TooLong { .. })));
    let mut e = Encoder::new(Op::Getxattr.reply_code());
    e.u32(u32::MAX);
    let msg = e.finish().unwrap();
    let (code, body) = parse_frame(&msg).unwrap();
    assert!(matches!(
        Response::decode(code, body),
        Err(ProtocolError::TooLong { .. })
    ));
}

#[test]
fn answers_of_the_wrong_shape_do_not_encode() {
    assert!(Response::Done(Op::Stat).encode().is_err());
    assert!(Response::New {
        op: Op::Link,
        fid: 1,
        attr: Stat::default()
    }
    .encode()
    .is_err());
}
