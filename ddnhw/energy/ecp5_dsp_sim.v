// ddnhw: a simulation model of the ECP5 MULT18X18D for the gate-level energy runs
// (ddnhw.energy.gatesim). yosys ships only a blackbox of this cell. Modelled: the
// combinational multiplier (every REG_*_CLK = "NONE", as yosys' ECP5 DSP mapping
// instantiates it): P = A * B, signed per SIGNEDA/SIGNEDB; the cascade outputs are 0.
// Any registered configuration stops the simulation with a message.
module MULT18X18D (
    input A17,
    input A16,
    input A15,
    input A14,
    input A13,
    input A12,
    input A11,
    input A10,
    input A9,
    input A8,
    input A7,
    input A6,
    input A5,
    input A4,
    input A3,
    input A2,
    input A1,
    input A0,
    input B17,
    input B16,
    input B15,
    input B14,
    input B13,
    input B12,
    input B11,
    input B10,
    input B9,
    input B8,
    input B7,
    input B6,
    input B5,
    input B4,
    input B3,
    input B2,
    input B1,
    input B0,
    input C17,
    input C16,
    input C15,
    input C14,
    input C13,
    input C12,
    input C11,
    input C10,
    input C9,
    input C8,
    input C7,
    input C6,
    input C5,
    input C4,
    input C3,
    input C2,
    input C1,
    input C0,
    input SIGNEDA,
    input SIGNEDB,
    input SOURCEA,
    input SOURCEB,
    input CLK3,
    input CLK2,
    input CLK1,
    input CLK0,
    input CE3,
    input CE2,
    input CE1,
    input CE0,
    input RST3,
    input RST2,
    input RST1,
    input RST0,
    input SRIA17,
    input SRIA16,
    input SRIA15,
    input SRIA14,
    input SRIA13,
    input SRIA12,
    input SRIA11,
    input SRIA10,
    input SRIA9,
    input SRIA8,
    input SRIA7,
    input SRIA6,
    input SRIA5,
    input SRIA4,
    input SRIA3,
    input SRIA2,
    input SRIA1,
    input SRIA0,
    input SRIB17,
    input SRIB16,
    input SRIB15,
    input SRIB14,
    input SRIB13,
    input SRIB12,
    input SRIB11,
    input SRIB10,
    input SRIB9,
    input SRIB8,
    input SRIB7,
    input SRIB6,
    input SRIB5,
    input SRIB4,
    input SRIB3,
    input SRIB2,
    input SRIB1,
    input SRIB0,
    output SROA17,
    output SROA16,
    output SROA15,
    output SROA14,
    output SROA13,
    output SROA12,
    output SROA11,
    output SROA10,
    output SROA9,
    output SROA8,
    output SROA7,
    output SROA6,
    output SROA5,
    output SROA4,
    output SROA3,
    output SROA2,
    output SROA1,
    output SROA0,
    output SROB17,
    output SROB16,
    output SROB15,
    output SROB14,
    output SROB13,
    output SROB12,
    output SROB11,
    output SROB10,
    output SROB9,
    output SROB8,
    output SROB7,
    output SROB6,
    output SROB5,
    output SROB4,
    output SROB3,
    output SROB2,
    output SROB1,
    output SROB0,
    output ROA17,
    output ROA16,
    output ROA15,
    output ROA14,
    output ROA13,
    output ROA12,
    output ROA11,
    output ROA10,
    output ROA9,
    output ROA8,
    output ROA7,
    output ROA6,
    output ROA5,
    output ROA4,
    output ROA3,
    output ROA2,
    output ROA1,
    output ROA0,
    output ROB17,
    output ROB16,
    output ROB15,
    output ROB14,
    output ROB13,
    output ROB12,
    output ROB11,
    output ROB10,
    output ROB9,
    output ROB8,
    output ROB7,
    output ROB6,
    output ROB5,
    output ROB4,
    output ROB3,
    output ROB2,
    output ROB1,
    output ROB0,
    output ROC17,
    output ROC16,
    output ROC15,
    output ROC14,
    output ROC13,
    output ROC12,
    output ROC11,
    output ROC10,
    output ROC9,
    output ROC8,
    output ROC7,
    output ROC6,
    output ROC5,
    output ROC4,
    output ROC3,
    output ROC2,
    output ROC1,
    output ROC0,
    output P35,
    output P34,
    output P33,
    output P32,
    output P31,
    output P30,
    output P29,
    output P28,
    output P27,
    output P26,
    output P25,
    output P24,
    output P23,
    output P22,
    output P21,
    output P20,
    output P19,
    output P18,
    output P17,
    output P16,
    output P15,
    output P14,
    output P13,
    output P12,
    output P11,
    output P10,
    output P9,
    output P8,
    output P7,
    output P6,
    output P5,
    output P4,
    output P3,
    output P2,
    output P1,
    output P0,
    output SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_INPUTA_CE = "";
    parameter REG_INPUTA_RST = "";
    parameter REG_INPUTB_CE = "";
    parameter REG_INPUTB_RST = "";
    parameter REG_INPUTC_CE = "";
    parameter REG_INPUTC_RST = "";
    parameter REG_PIPELINE_CE = "";
    parameter REG_PIPELINE_RST = "";
    parameter REG_OUTPUT_CE = "";
    parameter REG_OUTPUT_RST = "";
    parameter CLK0_DIV = "";
    parameter CLK1_DIV = "";
    parameter CLK2_DIV = "";
    parameter CLK3_DIV = "";
    parameter HIGHSPEED_CLK = "";
    parameter GSR = "";
    parameter CAS_MATCH_REG = "";
    parameter SOURCEB_MODE = "";
    parameter MULT_BYPASS = "";
    parameter RESETMODE = "";
    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    wire signed [18:0] sa = {SIGNEDA & a[17], a};
    wire signed [18:0] sb = {SIGNEDB & b[17], b};
    wire signed [37:0] prod = sa * sb;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = prod[35:0];
    assign SIGNEDP = SIGNEDA | SIGNEDB;
    assign SROA17 = 1'b0;
    assign SROA16 = 1'b0;
    assign SROA15 = 1'b0;
    assign SROA14 = 1'b0;
    assign SROA13 = 1'b0;
    assign SROA12 = 1'b0;
    assign SROA11 = 1'b0;
    assign SROA10 = 1'b0;
    assign SROA9 = 1'b0;
    assign SROA8 = 1'b0;
    assign SROA7 = 1'b0;
    assign SROA6 = 1'b0;
    assign SROA5 = 1'b0;
    assign SROA4 = 1'b0;
    assign SROA3 = 1'b0;
    assign SROA2 = 1'b0;
    assign SROA1 = 1'b0;
    assign SROA0 = 1'b0;
    assign SROB17 = 1'b0;
    assign SROB16 = 1'b0;
    assign SROB15 = 1'b0;
    assign SROB14 = 1'b0;
    assign SROB13 = 1'b0;
    assign SROB12 = 1'b0;
    assign SROB11 = 1'b0;
    assign SROB10 = 1'b0;
    assign SROB9 = 1'b0;
    assign SROB8 = 1'b0;
    assign SROB7 = 1'b0;
    assign SROB6 = 1'b0;
    assign SROB5 = 1'b0;
    assign SROB4 = 1'b0;
    assign SROB3 = 1'b0;
    assign SROB2 = 1'b0;
    assign SROB1 = 1'b0;
    assign SROB0 = 1'b0;
    assign ROA17 = 1'b0;
    assign ROA16 = 1'b0;
    assign ROA15 = 1'b0;
    assign ROA14 = 1'b0;
    assign ROA13 = 1'b0;
    assign ROA12 = 1'b0;
    assign ROA11 = 1'b0;
    assign ROA10 = 1'b0;
    assign ROA9 = 1'b0;
    assign ROA8 = 1'b0;
    assign ROA7 = 1'b0;
    assign ROA6 = 1'b0;
    assign ROA5 = 1'b0;
    assign ROA4 = 1'b0;
    assign ROA3 = 1'b0;
    assign ROA2 = 1'b0;
    assign ROA1 = 1'b0;
    assign ROA0 = 1'b0;
    assign ROB17 = 1'b0;
    assign ROB16 = 1'b0;
    assign ROB15 = 1'b0;
    assign ROB14 = 1'b0;
    assign ROB13 = 1'b0;
    assign ROB12 = 1'b0;
    assign ROB11 = 1'b0;
    assign ROB10 = 1'b0;
    assign ROB9 = 1'b0;
    assign ROB8 = 1'b0;
    assign ROB7 = 1'b0;
    assign ROB6 = 1'b0;
    assign ROB5 = 1'b0;
    assign ROB4 = 1'b0;
    assign ROB3 = 1'b0;
    assign ROB2 = 1'b0;
    assign ROB1 = 1'b0;
    assign ROB0 = 1'b0;
    assign ROC17 = 1'b0;
    assign ROC16 = 1'b0;
    assign ROC15 = 1'b0;
    assign ROC14 = 1'b0;
    assign ROC13 = 1'b0;
    assign ROC12 = 1'b0;
    assign ROC11 = 1'b0;
    assign ROC10 = 1'b0;
    assign ROC9 = 1'b0;
    assign ROC8 = 1'b0;
    assign ROC7 = 1'b0;
    assign ROC6 = 1'b0;
    assign ROC5 = 1'b0;
    assign ROC4 = 1'b0;
    assign ROC3 = 1'b0;
    assign ROC2 = 1'b0;
    assign ROC1 = 1'b0;
    assign ROC0 = 1'b0;
    initial begin
        if (REG_INPUTA_CLK != "NONE" || REG_INPUTB_CLK != "NONE" || REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE") begin
            $display("ddnhw: MULT18X18D with input/pipeline/output registers is not modelled");
            $finish;
        end
    end
endmodule
