// ddnhw: a simulation model of the ECP5 DP16KD block RAM for the gate-level energy runs
// (ddnhw.energy.gatesim). yosys' cells_sim.v has this cell only as a blackbox (its outputs
// would stay 0). Modelled: the 1024 x 18 array initialised from INITVAL_00..3F (16 words of
// 20 bits per INITVAL, 18 data bits each), port widths 9 (AD13:3; word k is half k[0] of the
// 18-bit word k >> 1), 18 (address AD13:4, byte enables AD1:0) and 36 (pseudo dual port:
// write on port A with DIA = bits 17:0 and DIB = bits 35:18, byte enables ADA3:0; read on
// port B with DOA = bits 17:0 and DOB = bits 35:18; word j is the 18-bit words 2j and 2j+1), synchronous reads with REGMODE NOREG or OUTREG, WRITEMODE
// NORMAL / WRITETHROUGH / READBEFOREWRITE, chip selects per CSDECODE, synchronous output
// reset. Other widths stop the simulation with a message. The gate-level run's comparison with
// the golden model is what checks this model on every design that uses it.
module DP16KD (
    input DIA17,
    input DIA16,
    input DIA15,
    input DIA14,
    input DIA13,
    input DIA12,
    input DIA11,
    input DIA10,
    input DIA9,
    input DIA8,
    input DIA7,
    input DIA6,
    input DIA5,
    input DIA4,
    input DIA3,
    input DIA2,
    input DIA1,
    input DIA0,
    input ADA13,
    input ADA12,
    input ADA11,
    input ADA10,
    input ADA9,
    input ADA8,
    input ADA7,
    input ADA6,
    input ADA5,
    input ADA4,
    input ADA3,
    input ADA2,
    input ADA1,
    input ADA0,
    input CEA,
    input OCEA,
    input CLKA,
    input WEA,
    input RSTA,
    input CSA2,
    input CSA1,
    input CSA0,
    output DOA17,
    output DOA16,
    output DOA15,
    output DOA14,
    output DOA13,
    output DOA12,
    output DOA11,
    output DOA10,
    output DOA9,
    output DOA8,
    output DOA7,
    output DOA6,
    output DOA5,
    output DOA4,
    output DOA3,
    output DOA2,
    output DOA1,
    output DOA0,
    input DIB17,
    input DIB16,
    input DIB15,
    input DIB14,
    input DIB13,
    input DIB12,
    input DIB11,
    input DIB10,
    input DIB9,
    input DIB8,
    input DIB7,
    input DIB6,
    input DIB5,
    input DIB4,
    input DIB3,
    input DIB2,
    input DIB1,
    input DIB0,
    input ADB13,
    input ADB12,
    input ADB11,
    input ADB10,
    input ADB9,
    input ADB8,
    input ADB7,
    input ADB6,
    input ADB5,
    input ADB4,
    input ADB3,
    input ADB2,
    input ADB1,
    input ADB0,
    input CEB,
    input OCEB,
    input CLKB,
    input WEB,
    input RSTB,
    input CSB2,
    input CSB1,
    input CSB0,
    output DOB17,
    output DOB16,
    output DOB15,
    output DOB14,
    output DOB13,
    output DOB12,
    output DOB11,
    output DOB10,
    output DOB9,
    output DOB8,
    output DOB7,
    output DOB6,
    output DOB5,
    output DOB4,
    output DOB3,
    output DOB2,
    output DOB1,
    output DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter GSR = "ENABLED";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter INITVAL_00 = 320'h0;
    parameter INITVAL_01 = 320'h0;
    parameter INITVAL_02 = 320'h0;
    parameter INITVAL_03 = 320'h0;
    parameter INITVAL_04 = 320'h0;
    parameter INITVAL_05 = 320'h0;
    parameter INITVAL_06 = 320'h0;
    parameter INITVAL_07 = 320'h0;
    parameter INITVAL_08 = 320'h0;
    parameter INITVAL_09 = 320'h0;
    parameter INITVAL_0A = 320'h0;
    parameter INITVAL_0B = 320'h0;
    parameter INITVAL_0C = 320'h0;
    parameter INITVAL_0D = 320'h0;
    parameter INITVAL_0E = 320'h0;
    parameter INITVAL_0F = 320'h0;
    parameter INITVAL_10 = 320'h0;
    parameter INITVAL_11 = 320'h0;
    parameter INITVAL_12 = 320'h0;
    parameter INITVAL_13 = 320'h0;
    parameter INITVAL_14 = 320'h0;
    parameter INITVAL_15 = 320'h0;
    parameter INITVAL_16 = 320'h0;
    parameter INITVAL_17 = 320'h0;
    parameter INITVAL_18 = 320'h0;
    parameter INITVAL_19 = 320'h0;
    parameter INITVAL_1A = 320'h0;
    parameter INITVAL_1B = 320'h0;
    parameter INITVAL_1C = 320'h0;
    parameter INITVAL_1D = 320'h0;
    parameter INITVAL_1E = 320'h0;
    parameter INITVAL_1F = 320'h0;
    parameter INITVAL_20 = 320'h0;
    parameter INITVAL_21 = 320'h0;
    parameter INITVAL_22 = 320'h0;
    parameter INITVAL_23 = 320'h0;
    parameter INITVAL_24 = 320'h0;
    parameter INITVAL_25 = 320'h0;
    parameter INITVAL_26 = 320'h0;
    parameter INITVAL_27 = 320'h0;
    parameter INITVAL_28 = 320'h0;
    parameter INITVAL_29 = 320'h0;
    parameter INITVAL_2A = 320'h0;
    parameter INITVAL_2B = 320'h0;
    parameter INITVAL_2C = 320'h0;
    parameter INITVAL_2D = 320'h0;
    parameter INITVAL_2E = 320'h0;
    parameter INITVAL_2F = 320'h0;
    parameter INITVAL_30 = 320'h0;
    parameter INITVAL_31 = 320'h0;
    parameter INITVAL_32 = 320'h0;
    parameter INITVAL_33 = 320'h0;
    parameter INITVAL_34 = 320'h0;
    parameter INITVAL_35 = 320'h0;
    parameter INITVAL_36 = 320'h0;
    parameter INITVAL_37 = 320'h0;
    parameter INITVAL_38 = 320'h0;
    parameter INITVAL_39 = 320'h0;
    parameter INITVAL_3A = 320'h0;
    parameter INITVAL_3B = 320'h0;
    parameter INITVAL_3C = 320'h0;
    parameter INITVAL_3D = 320'h0;
    parameter INITVAL_3E = 320'h0;
    parameter INITVAL_3F = 320'h0;
    parameter INITVAL_DATA = "NONE";

    localparam [20479:0] INIT = {INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38, INITVAL_37, INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30, INITVAL_2F, INITVAL_2E, INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28, INITVAL_27, INITVAL_26, INITVAL_25, INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20, INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C, INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18, INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13, INITVAL_12, INITVAL_11, INITVAL_10, INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A, INITVAL_09, INITVAL_08, INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01, INITVAL_00};
    reg [17:0] mem [0:1023];
    integer i;
    initial begin
        for (i = 0; i < 1024; i = i + 1)
            mem[i] = INIT[i * 20 +: 18];
        if (!(((DATA_WIDTH_A == 4 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 18) &&
               (DATA_WIDTH_B == 4 || DATA_WIDTH_B == 9 || DATA_WIDTH_B == 18)) ||
              (DATA_WIDTH_A == 36 && DATA_WIDTH_B == 36))) begin
            $display("ddnhw DP16KD model: DATA_WIDTH_A=%0d DATA_WIDTH_B=%0d not modelled",
                     DATA_WIDTH_A, DATA_WIDTH_B);
            $finish;
        end
    end

    function cs_match(input [2:0] cs, input [39:0] dec);
        cs_match = cs == {dec[23:16] == "1", dec[15:8] == "1", dec[7:0] == "1"};
    endfunction

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire csa = cs_match({CSA2, CSA1, CSA0}, CSDECODE_A);
    wire csb = cs_match({CSB2, CSB1, CSB0}, CSDECODE_B);
    reg [17:0] qa = 18'd0, qb = 18'd0, ra = 18'd0, rb = 18'd0;      // ports A, B (width 18)
    reg [17:0] wlo = 18'd0, whi = 18'd0, rlo = 18'd0, rhi = 18'd0;  // the read port (width 36)
    wire wide = DATA_WIDTH_A == 36;

    // a width-9 port addresses 2048 words (AD13:3): word k is half k[0] of 18-bit word k >> 1
    // a width-4 port addresses 4096 words (AD13:2): word k is nibble k[0] of half k[1] of
    // 18-bit word k >> 2 (bits 3:0, 7:4, 12:9, 16:13)
    function [17:0] rd(input [13:0] ad, input integer w);
        reg [8:0] h;
        h = ad[3] ? mem[ad[13:4]][17:9] : mem[ad[13:4]][8:0];
        if (w == 4) rd = {14'd0, ad[2] ? h[7:4] : h[3:0]};
        else rd = w == 9 ? {9'd0, h} : mem[ad[13:4]];
    endfunction

    // port A (width 9/18) / the write port (width 36)
    always @(posedge CLKA) begin
        if (CEA && csa) begin
            if (wide) begin
                if (WEA) begin
                    if (ada[0]) mem[{ada[13:5], 1'b0}][8:0] <= dia[8:0];
                    if (ada[1]) mem[{ada[13:5], 1'b0}][17:9] <= dia[17:9];
                    if (ada[2]) mem[{ada[13:5], 1'b1}][8:0] <= dib[8:0];
                    if (ada[3]) mem[{ada[13:5], 1'b1}][17:9] <= dib[17:9];
                end
            end else begin
                if (WEA) begin
                    if (DATA_WIDTH_A == 4) begin
                        mem[ada[13:4]][(ada[3] ? 9 : 0) + (ada[2] ? 4 : 0) +: 4] <= dia[3:0];
                    end else if (DATA_WIDTH_A == 9) begin
                        if (ada[3]) mem[ada[13:4]][17:9] <= dia[8:0];
                        else mem[ada[13:4]][8:0] <= dia[8:0];
                    end else begin
                        if (ada[0]) mem[ada[13:4]][8:0] <= dia[8:0];
                        if (ada[1]) mem[ada[13:4]][17:9] <= dia[17:9];
                    end
                end
                if (RSTA && RESETMODE == "SYNC") qa <= 18'd0;
                else if (!WEA || WRITEMODE_A == "READBEFOREWRITE") qa <= rd(ada, DATA_WIDTH_A);
                else if (WRITEMODE_A == "WRITETHROUGH")
                    qa <= DATA_WIDTH_A == 4 ? {14'd0, dia[3:0]} :
                          DATA_WIDTH_A == 9 ? {9'd0, dia[8:0]} :
                          {ada[1] ? dia[17:9] : mem[ada[13:4]][17:9],
                           ada[0] ? dia[8:0] : mem[ada[13:4]][8:0]};
            end
        end
        if (OCEA) ra <= RSTA ? 18'd0 : qa;
    end

    // port B (width 9/18) / the read port (width 36)
    always @(posedge CLKB) begin
        if (CEB && csb) begin
            if (wide) begin
                if (RSTB && RESETMODE == "SYNC") begin
                    wlo <= 18'd0;
                    whi <= 18'd0;
                end else begin
                    wlo <= mem[{adb[13:5], 1'b0}];
                    whi <= mem[{adb[13:5], 1'b1}];
                end
            end else begin
                if (WEB) begin
                    if (DATA_WIDTH_B == 4) begin
                        mem[adb[13:4]][(adb[3] ? 9 : 0) + (adb[2] ? 4 : 0) +: 4] <= dib[3:0];
                    end else if (DATA_WIDTH_B == 9) begin
                        if (adb[3]) mem[adb[13:4]][17:9] <= dib[8:0];
                        else mem[adb[13:4]][8:0] <= dib[8:0];
                    end else begin
                        if (adb[0]) mem[adb[13:4]][8:0] <= dib[8:0];
                        if (adb[1]) mem[adb[13:4]][17:9] <= dib[17:9];
                    end
                end
                if (RSTB && RESETMODE == "SYNC") qb <= 18'd0;
                else if (!WEB || WRITEMODE_B == "READBEFOREWRITE") qb <= rd(adb, DATA_WIDTH_B);
                else if (WRITEMODE_B == "WRITETHROUGH")
                    qb <= DATA_WIDTH_B == 4 ? {14'd0, dib[3:0]} :
                          DATA_WIDTH_B == 9 ? {9'd0, dib[8:0]} :
                          {adb[1] ? dib[17:9] : mem[adb[13:4]][17:9],
                           adb[0] ? dib[8:0] : mem[adb[13:4]][8:0]};
            end
        end
        if (OCEB) begin
            rb <= RSTB ? 18'd0 : qb;
            rlo <= RSTB ? 18'd0 : wlo;
            rhi <= RSTB ? 18'd0 : whi;
        end
    end

    wire outreg_b = REGMODE_B == "OUTREG";
    wire [17:0] oa = wide ? (outreg_b ? rlo : wlo) : (REGMODE_A == "OUTREG" ? ra : qa);
    wire [17:0] ob = wide ? (outreg_b ? rhi : whi) : (outreg_b ? rb : qb);
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = oa;
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = ob;
endmodule
