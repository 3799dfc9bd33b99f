//! Building blocks shared by pages.
pub mod chart;
pub mod copy_button;
pub mod form;
pub mod icons;
pub mod layout;
pub mod local_time;
pub mod mobile_menu;
pub mod theme_toggle;
pub mod ui;
