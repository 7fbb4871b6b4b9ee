"""OCS routes (/ocs/v1.php and /ocs/v2.php): each route is written once and served under both."""
