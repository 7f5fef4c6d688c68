//! A plain libunftp server over the local file system, as a user would build one from the
//! crate's README: anonymous logins, passive ports, explicit FTPS when given a certificate.
//!
//! `unftp-server ROOT ADDR PASV_FIRST PASV_LAST [CERT KEY]`

use libunftp::ServerBuilder;
use unftp_sbe_fs::Filesystem;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 && args.len() != 6 {
        eprintln!("usage: unftp-server ROOT ADDR PASV_FIRST PASV_LAST [CERT KEY]");
        std::process::exit(2);
    }
    let root = std::path::PathBuf::from(&args[0]);
    let first: u16 = args[2].parse().expect("PASV_FIRST is a port");
    let last: u16 = args[3].parse().expect("PASV_LAST is a port");
    let mut builder = ServerBuilder::new(Box::new(move || {
        Filesystem::new(root.clone()).expect("ROOT is a directory")
    }))
    .passive_ports(first..=last);
    if args.len() == 6 {
        builder = builder.ftps(args[4].clone(), args[5].clone());
    }
    let server = builder.build().expect("a valid server configuration");
    if let Err(e) = server.listen(args[1].clone()).await {
        eprintln!("unftp-server: {e}");
        std::process::exit(1);
    }
}
