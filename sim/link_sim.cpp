// The board top (ddnhw_link: UART + framing + core) in Verilator, driven bit by bit from C++ and
// steered over stdin/stdout by the host runtime (ddnhw/host/link_sim.py): the Python side says
// which bytes to put on the rx pin and how long to run; this program clocks the model, drives
// rx at DIVISOR cycles per bit (8N1, LSB first) and deserializes tx the way a UART does
// (falling edge, middle of the start bit, eight data bits, stop bit). No Python runs per cycle
// or per bit: that is what makes 10^5 frames through the RTL affordable.
//
// Commands (little-endian binary):
//   'W' u32 n, n bytes      queue bytes for the rx pin (no answer)
//   'R' u32 want, u64 max   run until `want` received bytes are waiting or `max` cycles have
//                           passed; answer u64 cycle, u32 k, k bytes (at most `want`)
//   'C'                     answer u64 cycle, u64 framing errors, u32 bytes still queued
//   'Q'                     quit
// Argument: the divisor (cycles per bit). The model is reset for 4 cycles at start.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <vector>

#include "Vddnhw_link.h"
#include "verilated.h"

static Vddnhw_link* top;
static uint64_t cycle = 0;
static int divisor = 4;

static std::deque<uint8_t> queue_rx;    // bytes still to drive onto rx
static int drv_bit = -1, drv_timer = 0; // bit index being driven (-1: line idle)
static uint16_t drv_frame = 0;

static int mon_state = 0, mon_timer = 0, mon_bits = 0, prev_tx = 1;
static uint8_t mon_byte = 0;
static std::vector<uint8_t> received;
static uint64_t framing_errors = 0;

static void tick() {
    if (drv_bit < 0 && !queue_rx.empty()) {
        drv_frame = (uint16_t)((1u << 9) | ((unsigned)queue_rx.front() << 1));  // stop, data, start
        queue_rx.pop_front();
        drv_bit = 0;
        drv_timer = divisor;
    }
    top->rx = drv_bit < 0 ? 1 : (drv_frame >> drv_bit) & 1;
    top->clk = 0;
    top->eval();
    top->clk = 1;
    top->eval();
    cycle++;
    if (drv_bit >= 0 && --drv_timer == 0) {
        drv_timer = divisor;
        if (++drv_bit == 10) drv_bit = -1;
    }
    int tx = top->tx & 1;
    switch (mon_state) {
    case 0:
        if (prev_tx && !tx) { mon_state = 1; mon_timer = divisor / 2; }
        break;
    case 1:  // middle of the start bit
        if (--mon_timer == 0) {
            if (tx) mon_state = 0;  // a glitch
            else { mon_state = 2; mon_timer = divisor; mon_bits = 0; mon_byte = 0; }
        }
        break;
    case 2:
        if (--mon_timer == 0) {
            mon_byte |= (uint8_t)(tx << mon_bits);
            mon_timer = divisor;
            if (++mon_bits == 8) mon_state = 3;
        }
        break;
    case 3:
        if (--mon_timer == 0) {
            if (tx) received.push_back(mon_byte);
            else framing_errors++;
            mon_state = 0;
        }
        break;
    }
    prev_tx = tx;
}

static void read_exact(void* p, size_t n) {
    if (n && fread(p, 1, n, stdin) != n) exit(0);  // the host went away
}

static void write_all(const void* p, size_t n) {
    if (n && fwrite(p, 1, n, stdout) != n) exit(1);
}

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    if (argc > 1) divisor = atoi(argv[1]);
    if (divisor < 4) { fprintf(stderr, "divisor must be >= 4\n"); return 2; }
    top = new Vddnhw_link;
    top->rx = 1;
    top->rst = 1;
    for (int k = 0; k < 4; k++) { top->clk = 0; top->eval(); top->clk = 1; top->eval(); }
    top->rst = 0;
    std::vector<uint8_t> buf;
    for (;;) {
        int cmd = fgetc(stdin);
        if (cmd == EOF || cmd == 'Q') break;
        if (cmd == 'W') {
            uint32_t n;
            read_exact(&n, 4);
            buf.resize(n);
            read_exact(buf.data(), n);
            queue_rx.insert(queue_rx.end(), buf.begin(), buf.end());
        } else if (cmd == 'R') {
            uint32_t want;
            uint64_t max_cycles;
            read_exact(&want, 4);
            read_exact(&max_cycles, 8);
            uint64_t end = cycle + max_cycles;
            while (received.size() < want && cycle < end) tick();
            uint32_t k = received.size() < want ? (uint32_t)received.size() : want;
            write_all(&cycle, 8);
            write_all(&k, 4);
            write_all(received.data(), k);
            received.erase(received.begin(), received.begin() + k);
            fflush(stdout);
        } else if (cmd == 'C') {
            uint32_t q = (uint32_t)queue_rx.size();
            write_all(&cycle, 8);
            write_all(&framing_errors, 8);
            write_all(&q, 4);
            fflush(stdout);
        } else {
            fprintf(stderr, "unknown command %d\n", cmd);
            return 2;
        }
    }
    top->final();
    delete top;
    return 0;
}
