// Routing key for nginx's consistent hash (njs, libnginx-mod-http-js): a
// tile goes to the replica that owns its dataset and its quadkey prefix at
// level 6, so every tile of one region, at every zoom from 6 on, is
// rendered by one replica, which then holds that region's partitions in
// its page cache or object cache instead of every replica holding all of
// them. Tiles above z6 and other requests are keyed by their URI.
// docs/scaling.md measures the trade-off (locality against balance).
var LEVEL = 6;

function key(r) {
    var m = r.uri.match(/^\/tiles\/([^\/]+)\/(\d+)\/(\d+)\/(\d+)/);
    if (!m) {
        return r.uri;
    }
    var z = Number(m[2]);
    if (z < LEVEL) {
        return r.uri;
    }
    var shift = z - LEVEL;
    // Division, not >>: x and y reach 2^30 at z30, past 32-bit shifts.
    var x = Math.floor(Number(m[3]) / Math.pow(2, shift));
    var y = Math.floor(Number(m[4]) / Math.pow(2, shift));
    var q = '';
    for (var i = LEVEL - 1; i >= 0; i--) {
        var b = Math.pow(2, i);
        q += String((Math.floor(x / b) % 2) + 2 * (Math.floor(y / b) % 2));
    }
    return m[1] + '/' + q;
}

export default { key };
