// Package nodews runs zenws clients against a venue written in Node.js on
// the `ws` library (venue.js; binance.js and deribit.js count and
// authenticate as those venues do; okx.js speaks the OKX v5 subset of
// transport/wstest's WithOKX): a WebSocket implementation that
// zenws's authors did not write. Its tests need node and Debian's node-ws
// (`apt-get install node-ws`, which .ci/run installs); without them they
// skip, except under CI=true, where they fail.
package nodews
