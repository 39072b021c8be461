//! The one end-to-end test binary: runs the real `stepwise` binary against real files and real
//! loopback servers. Modules are grouped by feature.

mod support;

mod boomi;
mod bounds;
mod cli;
mod cluster;
mod console;
mod console_browser;
mod console_tls;
mod engine;
mod graph_render;
mod http_connector;
mod knowbe4;
mod newcomer;
mod process_inputs;
mod processes;
mod proctest;
mod safe_data;
mod serve;
mod testmode;
mod webhook;
